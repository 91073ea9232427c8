"""Helpers shared by test files in several folders (tiny model folders, corpora).

Importable as `helpers.*` because pytest puts tests/ (the rootdir conftest's folder) on sys.path.
"""
