"""The engine's one refusal: raised by any entry point a person called, caught by the handler that tells them."""


class Refused(Exception):
    """The click or command is not allowed; the message says why, for the user who made it."""
