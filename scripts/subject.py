#!/usr/bin/env python3
"""The subject the gateway hands every provider for a tenant's user (shared/src/session/subject.rs),
derived here independently of the gateway's code: a name-based UUID (RFC 9562 version 8) of
SHA-256 over a versioned, length-framed tenant and user id.

    python3 scripts/subject.py TENANT USER_ID   # prints it
"""
import hashlib
import struct
import sys


def subject(tenant: str, user_id: str) -> str:
    h = hashlib.sha256()
    for part in (b"idv-gateway/subject/v1", tenant.encode(), user_id.encode()):
        h.update(struct.pack(">Q", len(part)))
        h.update(part)
    b = bytearray(h.digest()[:16])
    b[6] = (b[6] & 0x0F) | 0x80  # version 8
    b[8] = (b[8] & 0x3F) | 0x80  # RFC 9562 variant
    x = b.hex()
    return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"


if __name__ == "__main__":
    print(subject(sys.argv[1], sys.argv[2]))
