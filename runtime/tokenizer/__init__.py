"""The runtime's own SentencePiece-unigram tokenizer, read from a bundle's tokenizer.json."""

from .errors import InputTooLongError, InvalidTextError, TokenizerConfigError
from .tokenizer import Tokenizer

__all__ = ["Tokenizer", "TokenizerConfigError", "InvalidTextError", "InputTooLongError"]
