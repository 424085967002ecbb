"""Every `sla-bot` command (typer): `entry` is the console script, `main` holds the app and the
matrix commands, the others add their groups. Errors become one clear line and a non-zero exit,
never a traceback."""
