"""Delta packs (issue 17): carry only what changed since a base the site already has.

:mod:`.manifest` names a base and reads it from wherever it is, :mod:`.compare` decides what a
delta carries and declares it, :mod:`.apply` completes a delta from its base and swaps an
updated environment into place. The plan (``pack --base``), pack and unpack call these.
"""
