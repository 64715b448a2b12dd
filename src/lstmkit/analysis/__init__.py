"""Analyses of trained or random recurrent cells (gradient flow through time)."""
from .jacobian import lstm_cell_state_jacobian, lstm_cell_state_jacobian_analytic
