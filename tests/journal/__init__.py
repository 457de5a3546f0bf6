"""The journal's conformance suite and one test module per backend."""
