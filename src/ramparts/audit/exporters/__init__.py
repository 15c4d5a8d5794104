"""Copy the audit log to the search tools people already run: Elastic, Splunk, Loki.

>>> from ramparts.audit.exporters import ElasticExporter, ExportRecord, Secret
>>> exporter = ElasticExporter("https://es:9200", index="logs-ramparts-default",
...                            api_key=Secret("ZXhhbXBsZTprZXk="))
>>> exporter
ElasticExporter('https://es:9200', index='logs-ramparts-default')

Each exporter speaks its tool's real ingest format (see each module's
docstring), retries what the server says is temporary, and returns an
:class:`ExportResult` naming the records that failed and why. Documents carry
ECS fields (``@timestamp``, ``trace.id``, ``transaction.id``, ``event.hash`` =
the entry's Merkle leaf hash), so a document found in a search tool can be
checked against the signed log. Tokens are :class:`Secret` objects, read from
a 0600 file or held in memory, masked in every repr and never logged.
"""

from ramparts.audit.exporters._base import ExportRecord, ExportResult, FailedRecord
from ramparts.audit.exporters._secret import Secret
from ramparts.audit.exporters.elastic import ElasticExporter
from ramparts.audit.exporters.loki import LokiExporter
from ramparts.audit.exporters.splunk import SplunkHECExporter

__all__ = [
    "ElasticExporter",
    "ExportRecord",
    "ExportResult",
    "FailedRecord",
    "LokiExporter",
    "Secret",
    "SplunkHECExporter",
]
