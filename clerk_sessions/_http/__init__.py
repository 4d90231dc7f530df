"""The HTTP layer: everything between an operation's request and the network.

- `engine`: the two libraries the SDK speaks the httpx API through, httpx2 (the default)
  and httpx (when the user brings an ``httpx.AsyncClient``), by their public names only;
- `client`: the ``httpx2.AsyncClient`` the SDK builds when the user passes none;
- `pool`: that client's transport, httpcore2's pool with one repair (a connection
  orphaned by a cancelled call is closed instead of holding a pool slot forever), on
  asyncio's own transports;
- `body`: reading an answer within ``max_response_bytes``, decompression included;
- `transport`: one logical request: rate limit, attempts, retries, error mapping, logs.
"""
