"""Getting bytes from channels and indexes: config, credentials, HTTP, the cache, downloads.

Modules: :mod:`.config` (pixi/rattler configuration: mirrors, concurrency), :mod:`.auth`
(credentials), :mod:`.http` (the one HTTP client and retry policy), :mod:`.cache` (the
content-addressed cache), :mod:`.download` (verified concurrent downloads).
"""
