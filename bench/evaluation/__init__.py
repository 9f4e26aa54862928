"""Evaluation stage: asking the served models the tasks' questions and grading their answers.

The lm-eval clients (``client``, ``client_kinds``), the evaluation loop and its schedule
(``evaluate``, ``schedule``, ``repeat``), answers and their grading (``answer``, ``extract``,
``recognize``, ``reasoning``, ``samples``), request payloads and token usage (``payload``,
``usage``), timing and metering of the requests (``timing``, ``metering``), the response cache
(``cache``) and lm-eval's log settings (``logs``).
"""
