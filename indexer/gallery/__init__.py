"""The gallery side: walking roots, planning a scan against the index, the incremental
indexer that reads, hashes and tags, and following changes as they happen."""
