"""One thin module per subcommand: parse, validate, call the library, print. No science here."""
