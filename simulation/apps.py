from django.apps import AppConfig


class SimulationConfig(AppConfig):
    name = "simulation"

    def ready(self) -> None:
        from events.registry import CALL_ASSIGNED, Phase, subscribe
        from simulation.services import simulated_call_plan_on_assignment, simulation_sweep_steps_register

        # Inside the transaction: the planned duration is part of the assignment (the call's row and
        # the call.assigned payload carry it), and the completion is scheduled only if it commits.
        subscribe(CALL_ASSIGNED, phase=Phase.IN_TRANSACTION, consumer=simulated_call_plan_on_assignment)
        simulation_sweep_steps_register()
