#!/usr/bin/env python3
"""Starts PyPI's Milvus 2.3.5 standalone server (`milvus-server`, installed into .venv-milvus
by tools/setup.sh) with one change: its launcher probes each listen port by binding it
without SO_REUSEADDR, so a port still in TIME_WAIT after a restart looks taken and the
launcher silently moves the API to another port. Here the probe sets SO_REUSEADDR, as the
Go server itself does, so a restarted server keeps its ports (19530 for the API).

    .venv-milvus/bin/python tools/milvus_server.py --data DIR
"""

import socket
import sys

import milvus


def _try_bind_port(self, port):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
        sock.listen()
        return sock
    except OSError:
        sock.close()
        return None


milvus.MilvusServerConfig.try_bind_port = _try_bind_port
sys.argv[0] = "milvus-server"
milvus.main()
