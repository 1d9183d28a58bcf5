"""Document version ingestion: uploaded files turned into text chunks by a Step Functions workflow."""
