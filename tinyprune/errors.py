"""The one error type every stage raises for bad input: the CLI prints it as one line, exit code 2."""


class TinypruneError(Exception):
    """A problem the user can fix: what is wrong, and what to do about it."""

    def __init__(self, problem: str, fix: str):
        super().__init__(f"{problem} — fix: {fix}")
        self.problem = problem
        self.fix = fix
