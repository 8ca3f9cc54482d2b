"""Tokenizer errors: each names the constraint, the value and what to do."""


class TokenizerConfigError(ValueError):
    """tokenizer.json holds something this runtime does not implement exactly."""


class InvalidTextError(ValueError):
    """An input text cannot be tokenized (e.g. it holds a lone surrogate)."""

    def __init__(self, message: str, index: int | None = None):
        super().__init__(message)
        self.index = index


class InputTooLongError(ValueError):
    """An input has more tokens than the model accepts and truncation was not requested."""

    def __init__(self, n_tokens: int, limit: int, exact: bool = True, index: int | None = None):
        given = f"{n_tokens}" if exact else f"at least {n_tokens}"
        where = f"input {index} " if index is not None else "input "
        super().__init__(
            f"{where}has {given} tokens but the model accepts at most {limit} "
            f"(special tokens included); pass truncate=True to keep the first {limit}"
        )
        self.n_tokens = n_tokens
        self.limit = limit
        self.exact = exact
        self.index = index
