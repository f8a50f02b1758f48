"""Pure stream logic: event contract, time buckets, watermarks, feature windows and their stores."""
