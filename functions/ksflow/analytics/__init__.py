"""Run aggregates for summaries and admin analytics.

- `store`: the aggregate items (one per tenant and 15-minute bucket of run creation), changed in
  the run store's transactions;
- `histogram`: the log-scale duration histogram (nearest-rank percentiles within 3.85%);
- `buckets`: 15-minute UTC buckets regrouped into local hours, days, weeks and months of any IANA zone;
- `summary`: the wire shapes and the fold of bucket records into a summary;
- `reports`: what each endpoint reads and returns.
"""
