"""`python -m indexer` runs the `dtindex` command."""

from indexer.cli.main import main_entry

if __name__ == "__main__":
    main_entry()
