"""The knowledge base: folders, documents and document versions as path parts."""
