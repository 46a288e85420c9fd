"""The layer everything else stands on: schemas, checks, errors, files, targets, the data
contract and tasks. Imports nothing else of dlx."""
