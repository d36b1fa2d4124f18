"""The built-in `palette` model: files shipped in the package, built by `build_palette`."""
