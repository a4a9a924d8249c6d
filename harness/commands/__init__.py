"""CLI sub-commands, one module each; each defines `register(subparsers)`."""
