"""Command-line front end: option parsing, rendering and exit codes only."""
