"""Every `sla-bot` command (typer): `entry` is the console script, `main` holds the app and the
matrix commands, the others hold their groups, built only when one of their commands is run
(`lazy`). Errors become one clear line and a non-zero exit, never a traceback."""
