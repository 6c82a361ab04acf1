"""Float64 numerics of the paper: HiPPO matrices, PTD, initializations and transfer functions."""
