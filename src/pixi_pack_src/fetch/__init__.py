"""Getting bytes from channels and indexes: config, credentials, HTTP, the cache, downloads.

Modules: :mod:`.config` (pixi/rattler configuration: mirrors, concurrency), :mod:`.auth`
(credentials), :mod:`.client` (the one HTTP client), :mod:`.retry` (the one retry policy),
:mod:`.http` (one file downloaded: mirrors, retries, checks) with :mod:`.transfer` (one
attempt: request and streaming), :mod:`.redirects` (credentials across redirects) and
:mod:`.failures` (failure kinds, messages, hints), :mod:`.protocols` (``oci``/``s3``/``gcs``
through py-rattler), :mod:`.cache` (the content-addressed cache), :mod:`.download` (verified
concurrent downloads).
"""
