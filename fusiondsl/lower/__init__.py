"""Old home of the backends (now :mod:`fusiondsl.backends`): the runtime old kernels import."""
