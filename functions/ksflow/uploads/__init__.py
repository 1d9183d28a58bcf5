"""Direct uploads: clients put files of any size straight into the documents bucket, then complete them."""
