"""The warm process: a resident runvoy that has already imported everything, forked once per command.

Starting Python and importing runvoy costs a local command most of its time. After a command, a small server
stays resident for a while (``server``), with runvoy's modules imported. The next command's console script
(``client``, standard library only) hands it the command line, the environment, the working directory and
its own stdin, stdout and stderr; the server forks, and the child runs the command exactly as a fresh process
would, writing straight to the caller's terminal or pipes. Signals are forwarded; the exit status comes back.
Decision 1414 says why, and what keeps a warm command identical to a cold one.
"""
