"""The resolution state: one policy over one storage, per deployment.

- :mod:`.records`: what is stored, and the deployment it belongs to;
- :mod:`.policy`: the rules (TTL and single flight, the breaker, incidents
  and outages, the last-known-good copy), each written once;
- :mod:`.storage`: the seam; :mod:`.sqlite` (machine-wide, the default) and
  :mod:`.memory` (this process) implement it;
- :mod:`.state`: one deployment's state, as the resolver uses it;
- :mod:`.codec`: a resolution as stored;
- :mod:`.view`: every deployment's state, for status views.
"""
