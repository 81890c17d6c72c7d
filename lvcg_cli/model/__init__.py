"""The LVCG model: fixed geometry layer, learned lifter, beat encoder, dynamics, decoder and losses."""
