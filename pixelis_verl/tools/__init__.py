"""verl tool adapters over the pixel ops: coordinate frames, argument checks, step records, one module per tool."""
