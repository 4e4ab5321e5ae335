"""`python -m ivrpowers`: the same as the `ivrpowers` command."""
from ivrpowers.cli.main import main

main()
