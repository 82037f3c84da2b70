"""The shared core: what infrastructure, AWS jobs, Lambda handlers and workstation tools all import.

Standard library only and Python 3.9-safe, because the Glue and Lambda runtimes and the stock
SageMaker images import it as they are.
"""
