"""The message bus between the server and the agents (architecture.md section 3).

Import what you need from the submodules: :mod:`.interface` (the Bus protocol), :mod:`.envelope`
(the versioned wire format), :mod:`.errors`, :mod:`.factory` (``build_bus``), and the transports
:mod:`.memory` and :mod:`.amqp`. Nothing is imported here, so that using the in-process bus never
loads the AMQP client.
"""
