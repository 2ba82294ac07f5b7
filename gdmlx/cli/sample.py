"""gdmlx sample: make a reference dataset by Langevin MD with an ASE calculator."""

import os
import time

from gdmlx.cli.arguments import non_negative_float, non_negative_int, positive_float, positive_int
from gdmlx.errors import InputError
from gdmlx.interrupts import Terminated
from gdmlx.progress import Pacer, finish, show, time_left


def add_parser(sub):
    p = sub.add_parser("sample", help="make a dataset by Langevin MD with a reference calculator",
                       description="Run Langevin MD with an ASE calculator and record geometries, "
                                   "energies and forces (kcal/mol, Angstrom) as an sGDML-compatible "
                                   ".npz. tblite (GFN-xTB) and RDKit (for --smiles) are optional "
                                   "extras: pip install 'gdmlx[sample]'.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--smiles", help="start from a SMILES string (RDKit ETKDG + MMFF geometry)")
    src.add_argument("--xyz", help="start from a geometry file (any ASE-readable format)")
    add_calculator_arguments(p)
    p.add_argument("--temperature", type=non_negative_float, default=500.0,
                   help="temperature, K (default 500)")
    p.add_argument("--n", type=positive_int, required=True, help="number of frames to record")
    p.add_argument("--every", type=positive_int, default=20, help="record every this many steps (default 20)")
    p.add_argument("--dt", type=positive_float, default=0.5, help="time step, fs (default 0.5)")
    p.add_argument("--friction", type=non_negative_float, default=0.02,
                   help="Langevin friction, 1/fs (default 0.02)")
    p.add_argument("--equilibrate", type=non_negative_float, default=1.0,
                   help="equilibration before recording, ps (default 1)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="random seed (default 0)")
    p.add_argument("-o", "--output", required=True, help="dataset file to write (.npz)")
    p.add_argument("--json", action="store_true", help="print a summary as JSON on stdout")
    p.set_defaults(run=run, output_suffixes=(".npz",), output_kind="datasets (sGDML format)")


def add_calculator_arguments(p):
    """--calculator, --method and --threads: the reference calculator (see make_calculator)."""
    p.add_argument("--calculator", choices=("tblite", "emt"), default="tblite",
                   help="tblite: GFN-xTB via tblite (default); emt: ASE's EMT (toy, for testing)")
    p.add_argument("--method", help="tblite method (default GFN2-xTB)")
    p.add_argument("--threads", type=positive_int,
                   help="OpenMP threads of tblite (default 1; oversubscribed threads stall)")


def start_atoms(args):
    """ASE Atoms of the start geometry."""
    if args.xyz:
        from gdmlx.cli.common import read_start_atoms
        return read_start_atoms(args.xyz)
    try:
        from rdkit import Chem
        from rdkit.Chem import AllChem
    except ImportError:
        raise ValueError("--smiles needs RDKit: pip install rdkit (or start from --xyz)") from None
    from ase import Atoms
    mol = Chem.MolFromSmiles(args.smiles)
    if mol is None:
        raise ValueError(f"RDKit cannot parse the SMILES {args.smiles!r}")
    mol = Chem.AddHs(mol)
    if AllChem.EmbedMolecule(mol, randomSeed=args.seed) != 0:
        raise ValueError(f"RDKit could not embed a 3D geometry for {args.smiles!r}")
    AllChem.MMFFOptimizeMolecule(mol)
    return Atoms(numbers=[a.GetAtomicNum() for a in mol.GetAtoms()],
                 positions=mol.GetConformer().GetPositions())


def make_calculator(args):
    """The ASE calculator named by ``args.calculator`` (tblite: ``args.method``, ``args.threads``,
    whose defaults it fills in)."""
    if args.calculator != "tblite":
        given = [f"--{name}" for name in ("method", "threads") if getattr(args, name) is not None]
        if given:
            raise InputError(f"{' and '.join(given)} set up tblite; --calculator {args.calculator} takes "
                             "neither: leave them out")
    args.method = "GFN2-xTB" if args.method is None else args.method
    args.threads = 1 if args.threads is None else args.threads
    if args.calculator == "emt":
        from ase.calculators.emt import EMT, parameters

        class EMTNamingElements(EMT):
            """ASE's EMT, refusing a molecule with elements it has no parameters for by
            naming them (EMT itself raises NotImplementedError from deep in a step)."""

            def initialize(self, atoms):
                missing = sorted(set(atoms.get_chemical_symbols()) - set(parameters))
                if missing:
                    raise InputError(f"--calculator emt has no parameters for {', '.join(missing)} (it knows "
                                     f"only {', '.join(sorted(parameters))}; a toy for testing): use "
                                     "--calculator tblite for this molecule")
                super().initialize(atoms)

        return EMTNamingElements()
    os.environ["OMP_NUM_THREADS"] = str(args.threads)   # read when tblite's library loads
    try:
        from tblite.ase import TBLite
    except ImportError:
        raise ValueError("--calculator tblite needs tblite: pip install tblite") from None
    return TBLite(method=args.method, verbosity=0)


def run(args):
    from ase.constraints import FixCom
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import Stationary, thermalize_momenta
    import ase.units
    import numpy as np

    from gdmlx.cli.common import log, print_json
    from gdmlx.dataset import Dataset
    from gdmlx.units import energy_in_ev

    if args.dt * args.friction > 1:
        raise InputError(f"--dt {args.dt:g} fs x --friction {args.friction:g}/fs is {args.dt * args.friction:.3g}: ASE's "
                         "Langevin integrator is a series in this product and needs it at most 1 (at 4 it stops "
                         "damping, above it heats the molecule until it breaks apart); lower either")
    atoms = start_atoms(args)
    atoms.calc = make_calculator(args)
    rng = np.random.default_rng(args.seed)
    thermalize_momenta(atoms, temperature_K=args.temperature, rng=rng)
    Stationary(atoms)
    atoms.set_constraint(FixCom())
    dyn = Langevin(atoms, timestep=args.dt * ase.units.fs, temperature_K=args.temperature,
                   friction=args.friction / ase.units.fs, fixcm=False, rng=rng)
    kcal = energy_in_ev("kcal/mol")
    intact = still_intact(atoms, args)
    t0 = time.perf_counter()
    n_eq = int(round(args.equilibrate * 1000 / args.dt))
    piece = max(100, n_eq // 20)                  # progress at most every 5 %: the first
    pacer = Pacer(n_eq, first=piece)              # piece's line (an early ETA), then paced
    for done in range(0, n_eq, piece):
        dyn.run(min(piece, n_eq - done))
        if not intact(dyn):
            raise ValueError(f"{intact.what}, during the equilibration: no frames recorded; "
                             "lower --temperature or --dt")
        ran = min(done + piece, n_eq)
        if not args.json and n_eq > piece and pacer.due(ran):
            show(f"sample: equilibrating, {ran}/{n_eq} steps{time_left(ran, n_eq, time.perf_counter() - t0)}")
    t1 = time.perf_counter()
    R, E, F = [], [], []
    interrupted = False
    # progress: the 10th frame's line (an early ETA), then paced (a line every 10 frames
    # wrote 3 a second to a log file with EMT)
    pacer = Pacer(args.n, first=10)
    try:
        while len(R) < args.n:
            dyn.run(args.every)
            if not intact(dyn):
                finish()
                if not R:
                    raise ValueError(f"{intact.what}, before the first frame: no frames recorded; "
                                     "lower --temperature or --dt")
                log(f"sample: {intact.what}; writing the {len(R)} frames before it "
                    "(lower --temperature or --dt for more)")
                interrupted = 1
                break
            R.append(atoms.positions.copy())
            E.append(atoms.get_potential_energy() / kcal)
            F.append(atoms.get_forces(apply_constraint=False) / kcal)
            if not args.json and pacer.due(len(R)):
                show(f"sample: {len(R)}/{args.n} frames, {time.perf_counter() - t0:.0f} s"
                     + time_left(len(R), args.n, time.perf_counter() - t1))
    except KeyboardInterrupt as exc:
        finish()
        if not R:
            raise
        log(f"sample: interrupted after {len(R)} frames; writing those")
        interrupted = 143 if isinstance(exc, Terminated) else 130
    theory = (f"{args.method if args.calculator == 'tblite' else 'EMT'}, Langevin {args.temperature:g} K, "
              f"dt {args.dt:g} fs, every {args.every} steps")
    name = args.smiles or os.path.splitext(os.path.basename(args.xyz))[0]
    ds = Dataset(R=np.array(R), z=atoms.numbers, F=np.array(F), E=np.array(E), name=name, theory=theory)
    ds.save_npz(args.output)
    summary = {"output": args.output, "frames": len(ds), "n_atoms": len(atoms), "theory": theory,
               "wall_s": time.perf_counter() - t0, "interrupted": bool(interrupted)}
    if args.json:
        print_json(summary)
    else:
        finish()
        log(f"wrote {args.output}: {len(ds)} frames of {len(atoms)} atoms ({theory})")
    # the frames are kept, but the run did not finish: 130 (Ctrl-C), 143 (SIGTERM), 1 (the molecule broke)
    return interrupted or 0


def still_intact(atoms, args):
    """A check ``intact(dyn) -> bool`` that the molecule of ``atoms`` stays in as many
    fragments as it starts in and no two atoms collide (:func:`gdmlx.bonds.topology_change`):
    a dataset of one molecule is no use with frames of its pieces, which too high a
    temperature or too long a time step makes. After a False, ``intact.what`` says what
    happened and when."""
    from gdmlx.bonds import fragments, topology_change

    z = atoms.numbers
    n_fragments = fragments(z, atoms.positions).max() + 1

    def intact(dyn):
        change = topology_change(z, n_fragments, atoms.positions)
        if change is None:
            return True
        i, j, r, what = change
        sym = atoms.get_chemical_symbols()
        t = f"after {dyn.get_number_of_steps() * args.dt / 1000:.3g} ps at {args.temperature:g} K"
        intact.what = (f"the molecule broke apart {t}: a piece with atom {sym[i]}{i} left it (nearest "
                       f"atom {sym[j]}{j}, {r:.3g} A away)" if what == "broke" else
                       f"two atoms collided {t}: {sym[i]}{i} and {sym[j]}{j}, {r:.3g} A apart")
        return False
    return intact
