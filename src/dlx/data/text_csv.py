"""`dataset=text_csv`, the name `dataset=text` had while it read CSV only.

Kept so configs saved by earlier runs (`_target_: dlx.data.text_csv.TextCSV`, read again by
`dlx eval` and `dlx viz`) still build: the same options mean the same thing.
"""

from dlx.data.text_files import TextFiles as TextCSV

__all__ = ["TextCSV"]
