"""Tests of the demo behind `make demo`."""
