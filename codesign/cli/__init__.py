"""The command line, one module per command (`codesign explore | cost | report | infer | accelerators`);
the entry point is `codesign.cli.main.main`."""
