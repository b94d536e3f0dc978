"""Federation: partner cities behind one GeoReport v2 API.

A jurisdiction is ``local`` (our database), ``remote`` (a partner's GeoReport v2 endpoint) or
``region`` (POSTs routed by location to the partner whose boundary contains the point).

* ``parse``   tolerant readers of partner documents (JSON and XML, XML only through the
  XXE-safe ``app.georeport.codec.decode_xml``); garbage becomes ``UpstreamBadResponse``.
* ``client``  ``RemoteBackend``: one partner's endpoint over the shared ``httpx.AsyncClient``,
  every call bounded by ``federation.timeout_s`` and guarded by the partner's circuit breaker.
* ``store``   partners (kind, endpoint, health, breaker), mirrored services, synced request
  copies (our ids stay ours; the partner's id is mapped), the jurisdictions listing. It
  decides; the statements (and their dialect branches) are ``app.store.federation``'s, so
  this package imports no database driver.
* ``service`` ``Federation``: refresh (mirror + sync), forwarding queued POSTs, status.

The POST branch for remote and region jurisdictions (validate locally against the mirror,
pick the partner, queue) is domain work: ``app.domain.forwarding``. The domain never imports
this package.
"""
