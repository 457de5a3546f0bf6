"""`python -m agentjournal`: the same command as `agentjournal`."""

from agentjournal.cli.main import main

if __name__ == "__main__":
    main()
