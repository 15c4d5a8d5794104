"""PII and secret masking for every log line before it leaves a process.

>>> from ramparts.masking import Masker
>>> Masker().mask_text("Authorization: Bearer abc.def.ghi phone +234 803 123 4567")
'Authorization: Bearer [SECRET] phone [PHONE]'

Detects Nigerian BVN and NIN (11 digits, by context and field name), NUBAN
account numbers (CBN check digit when a bank code is present), card numbers
(Luhn and issuer ranges, Verve included), Nigerian mobile numbers, e-mail
addresses, JWTs, ``Authorization`` values, secrets in key/value and JSON form,
URL passwords and PEM private keys. All detectors are compiled into one
regular expression and each text is scanned once.

Public names:

- :class:`Masker`: ``mask_text``, ``mask_record``, ``mask_lines``, ``findings``.
- :class:`Finding` and :class:`Kind`: what was found, for tests and tools.
- :class:`MaskingProcessor` and ``masking_processor``: for structlog chains.
- :class:`MaskingFilter`: for stdlib ``logging`` handlers.
"""

from ramparts.masking._finding import Finding, Kind
from ramparts.masking._logging import MaskingFilter, MaskingProcessor, masking_processor
from ramparts.masking._masker import Masker

__all__ = [
    "Finding",
    "Kind",
    "Masker",
    "MaskingFilter",
    "MaskingProcessor",
    "masking_processor",
]
