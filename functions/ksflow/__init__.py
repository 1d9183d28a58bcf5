"""ksflow: a serverless, self-hostable implementation of the Knowledge Stack workflow API."""
