"""Test support: throwaway PostgreSQL, PostgREST stand-in, fault proxy, seed helpers."""
