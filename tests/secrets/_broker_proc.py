"""Run a broker in its own process for the kill -9 tests: ``python -m tests.secrets._broker_proc``.

Arguments: storage key-file topology-file role-prefix cert key ca port-file. Unseals with
the key file (which runs the reconciler), serves over mTLS, writes its port when ready.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from ramparts.config import load_topology
from ramparts.events import EventEmitter, MemorySink
from ramparts.secrets import Broker, create_app

from ._mtls import MTLSServer


def main(argv: list[str]) -> None:
    storage, key_file, topo, prefix, cert, key, ca, port_file = argv
    broker = Broker(
        storage,
        load_topology(topo),
        emitter=EventEmitter([MemorySink()], service="secrets"),
        role_prefix=prefix,
        reaper_interval=0.5,
    )
    broker.unseal_key_file(key_file)
    server = MTLSServer(create_app(broker), cert, key, ca)
    server.start()
    tmp = Path(port_file + ".tmp")
    tmp.write_text(str(server.port))
    os.replace(tmp, port_file)
    while server.thread.is_alive():
        time.sleep(0.2)


if __name__ == "__main__":
    main(sys.argv[1:])
