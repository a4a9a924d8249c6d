"""`lorabench eval`: every base x adapter x task cell through lm-eval, into the results store."""
