"""`python -m ivrpowers`: the same as the `ivrpowers` command."""
from ivrpowers.cli.main import main

if __name__ == "__main__":  # not when a multiprocessing child imports this module
    main()
