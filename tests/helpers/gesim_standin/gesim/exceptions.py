class GesimError(Exception):
    pass


class GesimConnectionError(GesimError):
    pass


class ServerError(GesimError):
    def __init__(self, status: int, message: str):
        super().__init__(f"server returned {status}: {message}")
        self.status = status
        self.message = message
