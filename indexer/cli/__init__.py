"""The `dtindex` command: `main(argv) -> int` parses, runs one subcommand, maps errors to
exit codes; one module per subcommand under `commands/`, imported only when it runs."""

from indexer.cli.main import main, main_entry

__all__ = ["main", "main_entry"]
