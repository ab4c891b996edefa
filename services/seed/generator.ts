/**
 * A deterministic synthetic First Databank catalogue with the shape of production `fdb.rndc14`
 * (shared/data/rndc14.md): the real data is licensed and never leaves production.
 *
 * Structure, from the top:
 * - formulations (ingredient + strength + form) — one GCN_SEQNO each (~32K at full size);
 * - products: label names (LN60) of a formulation, generic ("LISINOPRIL 10 MG TABLET") or branded
 *   ("PRINIVIL 10 MG TABLET") — ~97K at full size, so about one row in five carries a label name no
 *   earlier row had;
 * - rows (NDCs): a product in one package size from one labeler (the manufacturer or a repackager).
 *
 * Values follow the documented distributions; zero dates are where the real table has them; ~2% of rows
 * fail the eligibility rule (null or too-short LN).
 */
import { RNDC14_COLUMNS, ZERO_DATE } from '../core/rndc14.ts';
import type { Rndc14Row } from '../core/rndc14.ts';
import { isEligible } from '../core/mapping.ts';

export const FULL_CATALOGUE_ROWS = 493_573;

/** mulberry32: small, fast, deterministic. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Rand = () => number;
const int = (r: Rand, n: number) => Math.floor(r() * n);
const pick = <T>(r: Rand, xs: readonly T[]): T => xs[int(r, xs.length)] as T;

/** Picks a key of `weights` (values are percentages; the remainder goes to the last key). */
function weighted(r: Rand, weights: readonly (readonly [string, number])[]): string {
  let x = r() * 100;
  for (const [v, w] of weights) {
    if (x < w) return v;
    x -= w;
  }
  return (weights[weights.length - 1] as readonly [string, number])[0];
}

// ------------------------------------------------------------------------------------------ vocabularies

/** Ingredient, DEA schedule (0 = none). Real generic names; combined with salts/variants below. */
// prettier-ignore
const INGREDIENTS: readonly (readonly [string, string])[] = [
  ['LISINOPRIL', '0'], ['ATORVASTATIN', '0'], ['METFORMIN', '0'], ['AMLODIPINE', '0'], ['METOPROLOL', '0'],
  ['OMEPRAZOLE', '0'], ['SIMVASTATIN', '0'], ['LOSARTAN', '0'], ['ALBUTEROL', '0'], ['GABAPENTIN', '0'],
  ['HYDROCHLOROTHIAZIDE', '0'], ['SERTRALINE', '0'], ['FUROSEMIDE', '0'], ['ACETAMINOPHEN', '0'],
  ['AMOXICILLIN', '0'], ['ALPRAZOLAM', '4'], ['ATENOLOL', '0'], ['CITALOPRAM', '0'], ['PRAVASTATIN', '0'],
  ['TRAMADOL', '4'], ['ESCITALOPRAM', '0'], ['MONTELUKAST', '0'], ['ROSUVASTATIN', '0'],
  ['BUPROPION', '0'], ['FLUOXETINE', '0'], ['CARVEDILOL', '0'], ['TRAZODONE', '0'], ['PANTOPRAZOLE', '0'],
  ['PREDNISONE', '0'], ['TAMSULOSIN', '0'], ['MELOXICAM', '0'], ['CLOPIDOGREL', '0'],
  ['LEVOTHYROXINE', '0'], ['WARFARIN', '0'], ['OXYCODONE', '2'], ['HYDROCODONE-ACETAMINOPHEN', '2'],
  ['MORPHINE', '2'], ['FENTANYL', '2'], ['METHYLPHENIDATE', '2'], ['AMPHETAMINE', '2'], ['LORAZEPAM', '4'],
  ['CLONAZEPAM', '4'], ['DIAZEPAM', '4'], ['ZOLPIDEM', '4'], ['BUPRENORPHINE', '3'], ['TESTOSTERONE', '3'],
  ['KETAMINE', '3'], ['PREGABALIN', '5'], ['CODEINE-GUAIFENESIN', '5'], ['INSULIN GLARGINE', '0'],
  ['INSULIN LISPRO', '0'], ['INSULIN ASPART', '0'], ['TIRZEPATIDE', '0'], ['SEMAGLUTIDE', '0'],
  ['DULAGLUTIDE', '0'], ['LIRAGLUTIDE', '0'], ['ENOXAPARIN', '0'], ['HEPARIN SODIUM', '0'],
  ['CEFTRIAXONE', '0'], ['VANCOMYCIN', '0'], ['AZITHROMYCIN', '0'], ['DOXYCYCLINE', '0'],
  ['CIPROFLOXACIN', '0'], ['LEVOFLOXACIN', '0'], ['CEPHALEXIN', '0'], ['AMOXICILLIN-CLAVULANATE', '0'],
  ['SULFAMETHOXAZOLE-TRIMETHOPRIM', '0'], ['NITROFURANTOIN', '0'], ['FLUCONAZOLE', '0'],
  ['ACYCLOVIR', '0'], ['VALACYCLOVIR', '0'], ['OSELTAMIVIR', '0'], ['HYDROCORTISONE', '0'],
  ['TRIAMCINOLONE', '0'], ['BETAMETHASONE', '0'], ['CLOBETASOL', '0'], ['MUPIROCIN', '0'],
  ['KETOCONAZOLE', '0'], ['LIDOCAINE', '0'], ['DICLOFENAC', '0'], ['IBUPROFEN', '0'], ['NAPROXEN', '0'],
  ['ASPIRIN', '0'], ['CETIRIZINE', '0'], ['LORATADINE', '0'], ['FEXOFENADINE', '0'],
  ['DIPHENHYDRAMINE', '0'], ['FAMOTIDINE', '0'], ['RANITIDINE', '0'], ['ONDANSETRON', '0'],
  ['PROMETHAZINE', '0'], ['METOCLOPRAMIDE', '0'], ['DULOXETINE', '0'], ['VENLAFAXINE', '0'],
  ['PAROXETINE', '0'], ['QUETIAPINE', '0'], ['ARIPIPRAZOLE', '0'], ['RISPERIDONE', '0'],
  ['OLANZAPINE', '0'], ['LAMOTRIGINE', '0'], ['LEVETIRACETAM', '0'], ['TOPIRAMATE', '0'],
  ['DIVALPROEX', '0'], ['LITHIUM CARBONATE', '0'], ['SPIRONOLACTONE', '0'], ['VALSARTAN', '0'],
  ['OLMESARTAN', '0'], ['DILTIAZEM', '0'], ['VERAPAMIL', '0'], ['HYDRALAZINE', '0'], ['CLONIDINE', '0'],
  ['PROPRANOLOL', '0'], ['NEBIVOLOL', '0'], ['DIGOXIN', '0'], ['APIXABAN', '0'], ['RIVAROXABAN', '0'],
  ['DABIGATRAN', '0'], ['EZETIMIBE', '0'], ['FENOFIBRATE', '0'], ['GLIPIZIDE', '0'], ['GLIMEPIRIDE', '0'],
  ['PIOGLITAZONE', '0'], ['SITAGLIPTIN', '0'], ['EMPAGLIFLOZIN', '0'], ['DAPAGLIFLOZIN', '0'],
  ['ALLOPURINOL', '0'], ['COLCHICINE', '0'], ['FINASTERIDE', '0'], ['SILDENAFIL', '0'], ['TADALAFIL', '0'],
  ['OXYBUTYNIN', '0'], ['ESTRADIOL', '0'], ['MEDROXYPROGESTERONE', '0'], ['NORETHINDRONE', '0'],
  ['ALENDRONATE', '0'], ['CALCITRIOL', '0'], ['CYANOCOBALAMIN', '0'], ['FOLIC ACID', '0'],
  ['POTASSIUM CHLORIDE', '0'], ['MAGNESIUM OXIDE', '0'], ['SODIUM CHLORIDE', '0'], ['DEXAMETHASONE', '0'],
  ['METHYLPREDNISOLONE', '0'], ['BUDESONIDE', '0'], ['FLUTICASONE', '0'], ['TIOTROPIUM', '0'],
  ['IPRATROPIUM', '0'], ['ADALIMUMAB', '0'], ['ETANERCEPT', '0'], ['METHOTREXATE', '0'],
  ['HYDROXYCHLOROQUINE', '0'], ['TACROLIMUS', '0'], ['CYCLOSPORINE', '0'], ['LATANOPROST', '0'],
  ['TIMOLOL', '0'], ['BACLOFEN', '0'], ['CYCLOBENZAPRINE', '0'], ['TIZANIDINE', '0'], ['NALOXONE', '0'],
  ['NALTREXONE', '0'], ['EPINEPHRINE', '0'], ['GLUCAGON', '0'], ['MIDAZOLAM', '4'], ['PHENOBARBITAL', '4'],
  ['MODAFINIL', '4'], ['DEXTROSE', '0'],
  ['PROPOFOL', '0'], ['ENALAPRIL', '0'], ['BENAZEPRIL', '0'], ['RAMIPRIL', '0'], ['QUINAPRIL', '0'],
  ['IRBESARTAN', '0'], ['TELMISARTAN', '0'], ['CANDESARTAN', '0'], ['CHLORTHALIDONE', '0'], ['TORSEMIDE', '0'],
  ['BUMETANIDE', '0'], ['NIFEDIPINE', '0'], ['FELODIPINE', '0'], ['ISOSORBIDE MONONITRATE', '0'],
  ['NITROGLYCERIN', '0'], ['RANOLAZINE', '0'], ['LOVASTATIN', '0'], ['GEMFIBROZIL', '0'], ['GLYBURIDE', '0'],
  ['LINAGLIPTIN', '0'], ['CANAGLIFLOZIN', '0'], ['NORTRIPTYLINE', '0'], ['AMITRIPTYLINE', '0'],
  ['MIRTAZAPINE', '0'], ['HYDROXYZINE', '0'], ['BUSPIRONE', '0'], ['DONEPEZIL', '0'], ['MEMANTINE', '0'],
  ['ROPINIROLE', '0'], ['PRAMIPEXOLE', '0'], ['CARBIDOPA-LEVODOPA', '0'], ['SUMATRIPTAN', '0'],
  ['RIZATRIPTAN', '0'], ['OXCARBAZEPINE', '0'], ['CARBAMAZEPINE', '0'], ['PHENYTOIN', '0'], ['ZONISAMIDE', '0'],
  ['MECLIZINE', '0'], ['DICYCLOMINE', '0'], ['SUCRALFATE', '0'], ['ESOMEPRAZOLE', '0'], ['LANSOPRAZOLE', '0'],
  ['DOCUSATE SODIUM', '0'], ['BISACODYL', '0'], ['SENNOSIDES', '0'], ['LOPERAMIDE', '0'], ['TERBINAFINE', '0'],
  ['CLINDAMYCIN', '0'], ['METRONIDAZOLE', '0'], ['MINOCYCLINE', '0'], ['PENICILLIN V POTASSIUM', '0'],
  ['CEFDINIR', '0'], ['CEFUROXIME', '0'], ['VALGANCICLOVIR', '0'], ['BENZONATATE', '0'], ['GUAIFENESIN', '0'],
  ['PSEUDOEPHEDRINE', '0'],
];

/** Real brand names for well-known ingredients: a brand family's first names come from here. */
// prettier-ignore
const REAL_BRANDS: Readonly<Record<string, readonly string[]>> = {
  LISINOPRIL: ['PRINIVIL', 'ZESTRIL', 'QBRELIS'], ATORVASTATIN: ['LIPITOR'], METFORMIN: ['GLUCOPHAGE', 'FORTAMET'],
  AMLODIPINE: ['NORVASC'], METOPROLOL: ['LOPRESSOR', 'TOPROL XL'], OMEPRAZOLE: ['PRILOSEC'], SIMVASTATIN: ['ZOCOR'],
  LOSARTAN: ['COZAAR'], ALBUTEROL: ['PROAIR HFA', 'VENTOLIN HFA', 'PROVENTIL HFA'], GABAPENTIN: ['NEURONTIN', 'GRALISE'],
  SERTRALINE: ['ZOLOFT'], FUROSEMIDE: ['LASIX'], ACETAMINOPHEN: ['TYLENOL'], AMOXICILLIN: ['AMOXIL', 'MOXATAG'],
  ALPRAZOLAM: ['XANAX', 'XANAX XR'], ATENOLOL: ['TENORMIN'], CITALOPRAM: ['CELEXA'], PRAVASTATIN: ['PRAVACHOL'],
  TRAMADOL: ['ULTRAM'], ESCITALOPRAM: ['LEXAPRO'], MONTELUKAST: ['SINGULAIR'], ROSUVASTATIN: ['CRESTOR'],
  BUPROPION: ['WELLBUTRIN XL', 'ZYBAN'], FLUOXETINE: ['PROZAC'], CARVEDILOL: ['COREG'], PANTOPRAZOLE: ['PROTONIX'],
  TAMSULOSIN: ['FLOMAX'], MELOXICAM: ['MOBIC'], CLOPIDOGREL: ['PLAVIX'], LEVOTHYROXINE: ['SYNTHROID', 'LEVOXYL', 'UNITHROID'],
  WARFARIN: ['COUMADIN', 'JANTOVEN'], OXYCODONE: ['OXYCONTIN', 'ROXICODONE'], 'HYDROCODONE-ACETAMINOPHEN': ['NORCO', 'VICODIN'],
  MORPHINE: ['MS CONTIN'], FENTANYL: ['DURAGESIC', 'ACTIQ'], METHYLPHENIDATE: ['RITALIN', 'CONCERTA'], AMPHETAMINE: ['ADDERALL', 'ADZENYS XR-ODT'],
  LORAZEPAM: ['ATIVAN'], CLONAZEPAM: ['KLONOPIN'], DIAZEPAM: ['VALIUM'], ZOLPIDEM: ['AMBIEN', 'AMBIEN CR'],
  BUPRENORPHINE: ['SUBUTEX', 'BUTRANS'], TESTOSTERONE: ['ANDROGEL', 'DEPO-TESTOSTERONE'], PREGABALIN: ['LYRICA', 'LYRICA CR'],
  'INSULIN GLARGINE': ['LANTUS', 'BASAGLAR', 'TOUJEO', 'SEMGLEE'], 'INSULIN LISPRO': ['HUMALOG', 'ADMELOG', 'LYUMJEV'],
  'INSULIN ASPART': ['NOVOLOG', 'FIASP'], TIRZEPATIDE: ['ZEPBOUND', 'MOUNJARO'], SEMAGLUTIDE: ['OZEMPIC', 'WEGOVY', 'RYBELSUS'],
  DULAGLUTIDE: ['TRULICITY'], LIRAGLUTIDE: ['VICTOZA', 'SAXENDA'], ENOXAPARIN: ['LOVENOX'], CEFTRIAXONE: ['ROCEPHIN'],
  AZITHROMYCIN: ['ZITHROMAX', 'Z-PAK'], CIPROFLOXACIN: ['CIPRO'], LEVOFLOXACIN: ['LEVAQUIN'], CEPHALEXIN: ['KEFLEX'],
  'AMOXICILLIN-CLAVULANATE': ['AUGMENTIN'], 'SULFAMETHOXAZOLE-TRIMETHOPRIM': ['BACTRIM', 'BACTRIM DS'], FLUCONAZOLE: ['DIFLUCAN'],
  VALACYCLOVIR: ['VALTREX'], OSELTAMIVIR: ['TAMIFLU'], IBUPROFEN: ['ADVIL', 'MOTRIN IB'], NAPROXEN: ['ALEVE', 'NAPROSYN'],
  CETIRIZINE: ['ZYRTEC'], LORATADINE: ['CLARITIN'], FEXOFENADINE: ['ALLEGRA'], DIPHENHYDRAMINE: ['BENADRYL'],
  FAMOTIDINE: ['PEPCID'], ONDANSETRON: ['ZOFRAN', 'ZOFRAN ODT'], DULOXETINE: ['CYMBALTA'], VENLAFAXINE: ['EFFEXOR XR'],
  QUETIAPINE: ['SEROQUEL', 'SEROQUEL XR'], ARIPIPRAZOLE: ['ABILIFY'], RISPERIDONE: ['RISPERDAL'], OLANZAPINE: ['ZYPREXA'],
  LAMOTRIGINE: ['LAMICTAL'], LEVETIRACETAM: ['KEPPRA'], TOPIRAMATE: ['TOPAMAX'], DIVALPROEX: ['DEPAKOTE'],
  APIXABAN: ['ELIQUIS'], RIVAROXABAN: ['XARELTO'], DABIGATRAN: ['PRADAXA'], EZETIMIBE: ['ZETIA'], SITAGLIPTIN: ['JANUVIA'],
  EMPAGLIFLOZIN: ['JARDIANCE'], DAPAGLIFLOZIN: ['FARXIGA'], SILDENAFIL: ['VIAGRA', 'REVATIO'], TADALAFIL: ['CIALIS'],
  ADALIMUMAB: ['HUMIRA'], ETANERCEPT: ['ENBREL'], LATANOPROST: ['XALATAN'], EPINEPHRINE: ['EPIPEN', 'AUVI-Q'],
  NALOXONE: ['NARCAN'], MODAFINIL: ['PROVIGIL'], PROPOFOL: ['DIPRIVAN'], FLUTICASONE: ['FLONASE', 'FLOVENT HFA'],
  TIOTROPIUM: ['SPIRIVA'], BUDESONIDE: ['PULMICORT', 'ENTOCORT EC'], ESTRADIOL: ['ESTRACE', 'VIVELLE-DOT'],
};

/**
 * Routes an ingredient is sold in (default: solid oral only): o solid oral, l oral liquid, i injectable,
 * t cream/ointment/gel/lotion, p patch, h inhaler, e eye drops, n nasal spray. Keeps names plausible:
 * `ZEPBOUND 5 MG/0.5 ML VIAL`, `CLOBETASOL 0.05 % CREAM`, never a lisinopril syringe.
 */
// prettier-ignore
const ROUTES: Readonly<Record<string, string>> = {
  ALBUTEROL: 'olh', GABAPENTIN: 'ol', ACETAMINOPHEN: 'oli', AMOXICILLIN: 'ol', FUROSEMIDE: 'oli', PREDNISONE: 'ol',
  CETIRIZINE: 'ol', LORATADINE: 'ol', DIPHENHYDRAMINE: 'olit', FAMOTIDINE: 'oli', ONDANSETRON: 'oli',
  PROMETHAZINE: 'oli', METOCLOPRAMIDE: 'oli', IBUPROFEN: 'oli', NAPROXEN: 'ol', OXYCODONE: 'ol',
  'HYDROCODONE-ACETAMINOPHEN': 'ol', MORPHINE: 'oli', FENTANYL: 'ip', METHYLPHENIDATE: 'olp', LORAZEPAM: 'oli',
  DIAZEPAM: 'oli', BUPRENORPHINE: 'oip', TESTOSTERONE: 'itp', KETAMINE: 'i', 'CODEINE-GUAIFENESIN': 'l',
  'INSULIN GLARGINE': 'i', 'INSULIN LISPRO': 'i', 'INSULIN ASPART': 'i', TIRZEPATIDE: 'i', SEMAGLUTIDE: 'oi',
  DULAGLUTIDE: 'i', LIRAGLUTIDE: 'i', ENOXAPARIN: 'i', 'HEPARIN SODIUM': 'i', CEFTRIAXONE: 'i', VANCOMYCIN: 'oi',
  AZITHROMYCIN: 'oli', DOXYCYCLINE: 'ol', CIPROFLOXACIN: 'oie', LEVOFLOXACIN: 'oi', CEPHALEXIN: 'ol',
  'AMOXICILLIN-CLAVULANATE': 'ol', 'SULFAMETHOXAZOLE-TRIMETHOPRIM': 'ol', FLUCONAZOLE: 'oli', ACYCLOVIR: 'olit',
  OSELTAMIVIR: 'ol', HYDROCORTISONE: 'oit', TRIAMCINOLONE: 'itn', BETAMETHASONE: 'it', CLOBETASOL: 't',
  MUPIROCIN: 't', KETOCONAZOLE: 'ot', LIDOCAINE: 'itp', DICLOFENAC: 'otep', DEXAMETHASONE: 'olie',
  METHYLPREDNISOLONE: 'oi', BUDESONIDE: 'ohn', FLUTICASONE: 'hn', TIOTROPIUM: 'h', IPRATROPIUM: 'hn',
  ADALIMUMAB: 'i', ETANERCEPT: 'i', METHOTREXATE: 'oi', LATANOPROST: 'e', TIMOLOL: 'oe', NALOXONE: 'in',
  EPINEPHRINE: 'i', GLUCAGON: 'i', MIDAZOLAM: 'il', PHENOBARBITAL: 'oli', DEXTROSE: 'i', PROPOFOL: 'i',
  'SODIUM CHLORIDE': 'oin', 'POTASSIUM CHLORIDE': 'oli', CYANOCOBALAMIN: 'oin', ESTRADIOL: 'otp',
  MEDROXYPROGESTERONE: 'oi', NITROFURANTOIN: 'ol', LEVOTHYROXINE: 'oi', DIGOXIN: 'oli', LEVETIRACETAM: 'oli',
  HYDRALAZINE: 'oi', DILTIAZEM: 'oi', VERAPAMIL: 'oi', METOPROLOL: 'oi', PROPRANOLOL: 'oli', CLONIDINE: 'op',
  CLINDAMYCIN: 'olit', METRONIDAZOLE: 'oit', TERBINAFINE: 'ot', NITROGLYCERIN: 'oitp', SUMATRIPTAN: 'oin',
  HYDROXYZINE: 'oli', CARBAMAZEPINE: 'ol', PHENYTOIN: 'oli', GUAIFENESIN: 'ol', CEFDINIR: 'ol', CEFUROXIME: 'oi',
  RISPERIDONE: 'oli', ARIPIPRAZOLE: 'oli', OLANZAPINE: 'oi', 'FOLIC ACID': 'oi', 'MAGNESIUM OXIDE': 'o',
};

/** Form name, package description PD, HCFA unit. */
type Form = readonly [string, string, string];

interface Route {
  df: string;
  forms: readonly Form[];
  strengths: readonly string[];
  ps: readonly string[];
  salts: readonly string[];
}

// prettier-ignore
const SALTS = ['', ' HCL', ' SODIUM', ' POTASSIUM', ' CALCIUM', ' MALEATE', ' TARTRATE', ' SUCCINATE', ' HBR', ' MESYLATE'];
// prettier-ignore
const PARENTERAL_SALTS = ['', '', '', ' HCL', ' SODIUM', ' ACETATE', ' PHOSPHATE', ' PF'];

// prettier-ignore
const ROUTE_TABLE: Readonly<Record<string, Route>> = {
  o: {
    df: '1',
    forms: [
      ['TABLET', 'BOTTLE', 'TAB'], ['CAPSULE', 'BOTTLE', 'CAP'], ['TABLET ER', 'BOTTLE', 'TAB'],
      ['CAPSULE DR', 'BOTTLE', 'CAP'], ['TABLET DR', 'BLIST PACK', 'TAB'], ['ODT', 'BLIST PACK', 'TAB'],
      ['CHEWABLE TABLET', 'BOTTLE', 'TAB'], ['CAPSULE ER', 'BOTTLE', 'CAP'], ['TAB', 'BOTTLE', 'TAB'],
      ['TABLET ER 24 HR', 'BOTTLE', 'TAB'], ['CAPSULE ER 24 HR', 'BOTTLE', 'CAP'],
    ],
    strengths: [
      '0.1 MG', '0.25 MG', '0.5 MG', '1 MG', '2 MG', '2.5 MG', '4 MG', '5 MG', '7.5 MG', '10 MG', '12.5 MG',
      '15 MG', '20 MG', '25 MG', '30 MG', '40 MG', '50 MG', '60 MG', '75 MG', '80 MG', '100 MG', '120 MG',
      '150 MG', '200 MG', '250 MG', '300 MG', '400 MG', '500 MG', '600 MG', '750 MG', '800 MG', '875 MG',
      '1,000 MG', '5-325 MG', '10-325 MG', '7.5-325 MG', '875-125 MG', '25 MCG', '50 MCG', '75 MCG', '88 MCG',
      '112 MCG', '125 MCG',
    ],
    ps: ['30.000', '60.000', '90.000', '100.000', '500.000', '1000.000', '28.000', '14.000', '10.000', '120.000'],
    salts: SALTS,
  },
  l: {
    df: '2',
    forms: [['ORAL SOLN', 'BOTTLE', 'ML'], ['SUSPENSION', 'BOTTLE', 'ML'], ['SUSP', 'BOTTLE', 'ML'],
      ['SYRUP', 'BOTTLE', 'ML'], ['ELIXIR', 'BOTTLE', 'ML'], ['ORAL SUSP RECON', 'BOTTLE', 'ML']],
    strengths: ['250 MG/5 ML', '125 MG/5 ML', '200 MG/5 ML', '400 MG/5 ML', '100 MG/5 ML', '160 MG/5 ML',
      '5 MG/5 ML', '10 MG/5 ML', '1 MG/ML', '2 MG/ML', '4 MG/5 ML', '20 MG/ML', '40 MG/5 ML', '50 MG/5 ML'],
    ps: ['100.000', '150.000', '473.000', '118.000', '237.000', '5.000', '60.000', '480.000'],
    salts: SALTS,
  },
  i: {
    df: '2',
    forms: [['VIAL', 'VIAL', 'ML'], ['SYRINGE', 'SYRINGE', 'ML'], ['PEN INJECTOR', 'BOX', 'ML'],
      ['AUTO-INJECTOR', 'BOX', 'ML'], ['AMPUL', 'BOX', 'ML'], ['IV SOLN', 'BOX', 'ML'], ['CARTRIDGE', 'BOX', 'ML']],
    strengths: ['100 UNIT/ML', '5 MG/0.5 ML', '2.5 MG/0.5 ML', '7.5 MG/0.5 ML', '10 MG/0.5 ML', '12.5 MG/0.5 ML',
      '15 MG/0.5 ML', '40 MG/0.4 ML', '1 MG/ML', '2 MG/ML', '4 MG/2 ML', '10 MG/ML', '20 MG/ML', '50 MG/ML',
      '0.9 %', '5 %', '1,000 UNIT/ML', '5,000 UNIT/ML', '300 UNIT/3 ML', '0.3 MG/0.3 ML', '1 GM', '500 MG',
      '2 GM', '0.25 MG/0.5 ML', '1 MG/0.5 ML', '0.5 MG/0.5 ML'],
    ps: ['0.500', '1.000', '2.000', '3.000', '5.000', '10.000', '20.000', '100.000', '0.400', '250.000'],
    salts: PARENTERAL_SALTS,
  },
  t: {
    df: '3',
    forms: [['CREAM', 'BOX', 'GM'], ['OINTMENT', 'BOX', 'GM'], ['GEL', 'BOX', 'GM'], ['LOTION', 'BOTTLE', 'ML'],
      ['FOAM', 'BOX', 'GM'], ['SOLUTION', 'BOTTLE', 'ML']],
    strengths: ['0.025 %', '0.05 %', '0.1 %', '0.5 %', '1 %', '2 %', '2.5 %', '3 %', '4 %', '5 %', '10 %', '1.62 %'],
    ps: ['15.000', '30.000', '45.000', '60.000', '1.000', '8.500', '5.000', '2.500', '454.000'],
    salts: PARENTERAL_SALTS,
  },
  p: {
    df: '3',
    forms: [['PATCH', 'BOX', 'EA'], ['PATCH 24 HR', 'BOX', 'EA'], ['PATCH 72 HR', 'BOX', 'EA']],
    strengths: ['0.1 MG/24 HR', '0.2 MG/24 HR', '0.3 MG/24 HR', '12 MCG/HR', '25 MCG/HR', '50 MCG/HR', '75 MCG/HR',
      '5 %', '10 MG/9 HR', '4 MG/24 HR'],
    ps: ['4.000', '5.000', '8.000', '10.000', '30.000'],
    salts: PARENTERAL_SALTS,
  },
  h: {
    df: '3',
    forms: [['INHALER', 'BOX', 'EA'], ['HFA AER AD', 'BOX', 'GM'], ['INHAL SOLN', 'BOX', 'ML'],
      ['DISKUS', 'BOX', 'EA'], ['RESPIMAT', 'BOX', 'EA']],
    strengths: ['17 MCG', '44 MCG', '50 MCG', '90 MCG', '100 MCG', '110 MCG', '220 MCG', '250 MCG', '2.5 MCG',
      '0.5 MG/2 ML', '2.5 MG/3 ML', '1.25 MG/3 ML'],
    ps: ['1.000', '6.700', '8.500', '18.000', '60.000', '75.000'],
    salts: PARENTERAL_SALTS,
  },
  e: {
    df: '3',
    forms: [['EYE DROPS', 'BOTTLE', 'ML'], ['DROPERETTE', 'BOX', 'ML'], ['EYE OINTMENT', 'BOX', 'GM']],
    strengths: ['0.005 %', '0.1 %', '0.25 %', '0.3 %', '0.5 %', '1 %'],
    ps: ['2.500', '5.000', '10.000', '15.000', '3.500'],
    salts: PARENTERAL_SALTS,
  },
  n: {
    df: '3',
    forms: [['NASAL SPRAY', 'BOTTLE', 'ML'], ['SPRAY', 'BOTTLE', 'GM']],
    strengths: ['50 MCG', '55 MCG', '4 MG', '0.03 %', '0.06 %', '0.65 %', '32 MCG', '42 MCG'],
    ps: ['16.000', '9.900', '15.000', '30.000', '0.100'],
    salts: PARENTERAL_SALTS,
  },
};

// prettier-ignore
const BRAND_SYLLABLES = [
  'ZE', 'PRI', 'LI', 'TOR', 'VA', 'NO', 'XA', 'GLU', 'CO',
  'PHA', 'ZO', 'LOFT', 'NEX', 'IUM', 'LAN', 'TUS', 'MAX', 'RA', 'DEX', 'TRO', 'SYN', 'VEL', 'QUA', 'BRI',
  'LYR', 'ICA', 'ZAN', 'TAC', 'PRO', 'VIL', 'BOUND', 'JAR', 'DI', 'ANCE', 'OZEM', 'PIC', 'VIC', 'TOZA',
  'FLO', 'MET', 'AR', 'KEP', 'PRA', 'LEV', 'AMB', 'IEN', 'SEROQ', 'UEL', 'ABI', 'LIFY',
];

// ------------------------------------------------------------------------------------------ structure

interface Product {
  ln60: string;
  bn: string;
  gcn: number;
  df: string;
  pd: string;
  hcfaUnit: string;
  dea: string;
  innov: string;
  ps: readonly string[];
  /** manufacturer labeler index */
  labeler: number;
  productCode: number;
}

export interface CatalogueShape {
  rows: number;
  formulations: number;
  products: number;
  labelers: number;
}

export function catalogueShape(rows: number): CatalogueShape {
  return {
    rows,
    formulations: Math.max(1, Math.round(rows * (32_257 / FULL_CATALOGUE_ROWS))),
    products: Math.max(1, Math.round(rows * (97_463 / FULL_CATALOGUE_ROWS))),
    labelers: Math.max(1, Math.round(rows * (4_590 / FULL_CATALOGUE_ROWS))),
  };
}

function brandName(k: number): string {
  // A deterministic, pronounceable, unique name per k (base-50 syllables).
  let s = '';
  let n = k + 50;
  while (n > 0) {
    s += BRAND_SYLLABLES[n % BRAND_SYLLABLES.length];
    n = Math.floor(n / BRAND_SYLLABLES.length);
  }
  return s;
}

function buildProducts(shape: CatalogueShape, r: Rand): Product[] {
  const products: Product[] = [];
  const seen = new Set<string>();
  const formulations: {
    base: string;
    ing: string;
    dea: string;
    strength: string;
    form: Form;
    df: string;
    ps: readonly string[];
  }[] = [];
  const fseen = new Set<string>();
  // Pick the dosage form code first (the documented mix), then an ingredient sold that way, then a route.
  const byDf = new Map<string, { ing: readonly [string, string]; routes: string }[]>();
  for (const ing of INGREDIENTS) {
    const routes = ROUTES[ing[0]] ?? 'o';
    for (const df of new Set([...routes].map((c) => (ROUTE_TABLE[c] as Route).df))) {
      byDf.set(df, [...(byDf.get(df) ?? []), { ing, routes }]);
    }
  }
  while (formulations.length < shape.formulations) {
    const df = weighted(r, [
      ['1', 70.1],
      ['2', 19.9],
      ['3', 10],
    ]);
    const pool = byDf.get(df) as { ing: readonly [string, string]; routes: string }[];
    // A repeated formulation is redrawn within the same code (so collisions cannot shift the mix); after
    // many misses in a row (a vocabulary used up, tiny catalogues aside) the repeat is accepted.
    for (let miss = 0; ; miss++) {
      const { ing: ingredient, routes } = pick(r, pool);
      const [base, dea] = ingredient;
      const candidates = [...routes].filter((c) => (ROUTE_TABLE[c] as Route).df === df);
      const route = ROUTE_TABLE[pick(r, candidates)] as Route;
      const ing = base + pick(r, route.salts);
      const form = pick(r, route.forms);
      const strength = pick(r, route.strengths);
      const key = `${ing}|${strength}|${form[0]}`;
      if (fseen.has(key) && miss < 1_000) continue;
      fseen.add(key);
      formulations.push({ base, ing, dea, strength, form, df, ps: route.ps });
      break;
    }
  }
  // Brand families: a brand covers one ingredient across strengths and forms.
  const brandOf = new Map<string, number[]>();
  const realUsed = new Map<string, number>();
  const brandNames: string[] = [];
  let brands = 0;
  const brandTarget = Math.round(shape.rows * (47_853 / FULL_CATALOGUE_ROWS));
  for (let j = 0; products.length < shape.products; j++) {
    const fi = j < formulations.length ? j : int(r, formulations.length);
    const f = formulations[fi] as (typeof formulations)[number];
    const generic = j < formulations.length || r() < 0.22;
    let bn = '';
    let ln60: string;
    if (generic) {
      ln60 = `${f.ing} ${f.strength} ${f.form[0]}`;
      // Branded generics and repackager labels often carry a brand name too.
      if (r() < 0.3) bn = f.ing.split(' ')[0] as string;
      if (j >= formulations.length)
        ln60 = `${ln60} ${pick(r, ['UD', 'BULK', 'PF', 'HOSPITAL PACK', 'UNIT DOSE', 'DISPENSER', 'KIT', 'REPACK'])}`;
    } else {
      const fam = brandOf.get(f.ing) ?? [];
      let b: number;
      if (fam.length === 0 || (brands < brandTarget && r() < 0.97)) {
        b = brands++;
        fam.push(b);
        brandOf.set(f.ing, fam);
        // Well-known ingredients get their real brand names first (PRINIVIL, ZEPBOUND, LANTUS...).
        const real = REAL_BRANDS[f.base];
        const used = realUsed.get(f.base) ?? 0;
        if (real && used < real.length) {
          brandNames[b] = real[used] as string;
          realUsed.set(f.base, used + 1);
        } else brandNames[b] = brandName(b).slice(0, 30);
      } else {
        b = pick(r, fam);
      }
      bn = brandNames[b] as string;
      ln60 = `${bn} ${f.strength} ${f.form[0]}`;
    }
    ln60 = ln60.slice(0, 60).trimEnd();
    if (seen.has(ln60)) continue;
    seen.add(ln60);
    const brandLabel = !generic;
    products.push({
      ln60,
      bn,
      gcn: 10_000 + fi * 3 + 1,
      df: f.df,
      pd: f.form[1],
      hcfaUnit: f.form[2],
      // The schedule belongs to the ingredient: every alprazolam label is C-IV, no lisinopril is controlled.
      dea: f.dea,
      innov: brandLabel && r() < 0.34 ? '1' : '0',
      ps: f.ps,
      labeler: int(r, shape.labelers),
      productCode: int(r, 10_000),
    });
  }
  return products;
}

// ------------------------------------------------------------------------------------------ rows

const pad = (n: number, w: number) => String(n).padStart(w, '0');

/** DATETIME(6) strings by day since 1985-01-01, built once (the generator is on the load's hot path). */
const DAYS: string[] = [];
function dateFrom(day: number): string {
  let s = DAYS[day];
  if (s === undefined) {
    const d = new Date(Date.UTC(1985, 0, 1) + day * 86_400_000);
    s = `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1, 2)}-${pad(d.getUTCDate(), 2)} 00:00:00.000000`;
    DAYS[day] = s;
  }
  return s;
}

/** `k` distinct whole numbers in [from, from + span), in random order. */
function distinctInts(r: Rand, k: number, from: number, span: number): number[] {
  const out: number[] = [];
  const seen = new Set<number>();
  while (out.length < Math.min(k, span)) {
    const x = from + int(r, span);
    if (!seen.has(x)) {
      seen.add(x);
      out.push(x);
    }
  }
  return out;
}

/** Takes a random element out of `pool` (swap-remove), so each is handed out once. */
function takeOne(r: Rand, pool: string[]): string {
  const j = int(r, pool.length);
  const v = pool[j] as string;
  pool[j] = pool[pool.length - 1] as string;
  pool.pop();
  return v;
}

// prettier-ignore
const HCFA_FDA = [
  '01', '02', '03', '04', '05', '06', '07', '08', '09', '10', '11', '12', '13', '14', '15', '16', '17',
  '18', '19', '20', '21', '22', '23',
];

export interface GenerateOptions {
  rows: number;
  seed?: number;
  /**
   * 'shuffled' (default): catalogue order, NDCs in no particular order. 'ndc': the same rows sorted by
   * NDC, which InnoDB loads ~1.4x faster (primary key appends). Values per NDC are the same either way.
   */
  order?: 'shuffled' | 'ndc';
}

export const DEFAULT_SEED = 42;

/**
 * The catalogue, row by row (deterministic for a seed): `generateCatalogue(n, seed)` or
 * `generateCatalogue({ rows, seed })`. Memory: the product table (~100K entries at full size) plus one
 * Int32Array of product indices and the set of NDCs used.
 */
export function generateCatalogue(rows: number, seed?: number): Generator<Rndc14Row>;
export function generateCatalogue(opts: GenerateOptions): Generator<Rndc14Row>;
export function generateCatalogue(a: number | GenerateOptions, seed?: number): Generator<Rndc14Row> {
  const opts = typeof a === 'number' ? { rows: a, seed } : a;
  if (!Number.isInteger(opts.rows) || opts.rows < 0) {
    throw new RangeError(`generateCatalogue: rows must be a whole number ≥ 0, got ${opts.rows}`);
  }
  return rowsOf({ rows: opts.rows, seed: opts.seed ?? DEFAULT_SEED, order: opts.order ?? 'shuffled' });
}

/** Distinct labeler ids, one per labeler of the catalogue's shape. */
function labelerIdsOf(r: Rand, n: number): number[] {
  const ids: number[] = [];
  const seen = new Set<number>();
  while (ids.length < n) {
    const id = 2 + int(r, 99_990);
    if (!seen.has(id)) {
      seen.add(id);
      ids.push(id);
    }
  }
  return ids;
}

/** The product of each row: every product at least once, the rest by a skewed popularity; then shuffled. */
function assignProducts(r: Rand, rows: number, products: number): Int32Array {
  const assign = new Int32Array(rows);
  for (let i = 0; i < rows; i++) {
    assign[i] = i < products ? i : Math.floor(products * r() ** 1.7);
  }
  for (let i = rows - 1; i > 0; i--) {
    const j = int(r, i + 1);
    const t = assign[i] as number;
    assign[i] = assign[j] as number;
    assign[j] = t;
  }
  return assign;
}

/** Pass 1's result: who makes each row, its unique NDC, its previous/replacement NDC links. */
interface RowIdentities {
  ndcOf: string[];
  ndcNum: Float64Array;
  repackOf: Uint8Array;
  pndcOf: Map<number, string>;
  repndcOf: Map<number, string>;
}

/**
 * Pass 1, in catalogue order: who makes each row (manufacturer or repackager), its unique NDC, and the
 * previous/replacement NDC links (to rows met earlier in that order).
 */
function assignIdentities(
  r: Rand,
  rows: number,
  products: readonly Product[],
  assign: Int32Array,
  labelerIds: readonly number[],
): RowIdentities {
  const ids: RowIdentities = {
    ndcOf: new Array<string>(rows),
    ndcNum: new Float64Array(rows),
    repackOf: new Uint8Array(rows),
    pndcOf: new Map(),
    repndcOf: new Map(),
  };
  const used = new Set<string>();
  const pndcPool: string[] = [];
  const repndcPool: string[] = [];
  const linkShare = 18_543 / FULL_CATALOGUE_ROWS;
  for (let i = 0; i < rows; i++) {
    const p = products[assign[i] as number] as Product;
    const repack = r() < 0.243;
    const labeler = repack
      ? (labelerIds[int(r, labelerIds.length)] as number)
      : (labelerIds[p.labeler] as number);
    let ndc: string;
    for (let attempt = 0; ; attempt++) {
      const product = attempt === 0 ? p.productCode : int(r, 10_000);
      ndc = `${pad(labeler, 5)}${pad(product, 4)}${pad(int(r, 100), 2)}`;
      if (!used.has(ndc)) break;
    }
    used.add(ndc);
    ids.ndcOf[i] = ndc;
    ids.ndcNum[i] = Number(ndc);
    ids.repackOf[i] = repack ? 1 : 0;
    if (pndcPool.length > 0 && r() < linkShare) ids.pndcOf.set(i, takeOne(r, pndcPool));
    if (repndcPool.length > 0 && r() < linkShare) ids.repndcOf.set(i, takeOne(r, repndcPool));
    const link = r();
    if (link < 0.1) pndcPool.push(ndc);
    else if (link < 0.2) repndcPool.push(ndc);
  }
  return ids;
}

/**
 * Pass 2's random streams: every value of row i comes from its own stream (`reseed(i)`), so the same row
 * has the same values in either order.
 */
function rowStreams(seed: number): { ri: Rand; reseed: (i: number) => void } {
  let state = 0;
  const ri: Rand = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const seedMix = Math.imul(seed ^ 0x5bd1e995, 0x9e3779b1);
  const reseed = (i: number) => {
    state = (Math.imul((i + 1) ^ seedMix, 0x85ebca6b) ^ Math.imul(seedMix >>> 13, 0xc2b2ae35)) >>> 0;
  };
  return { ri, reseed };
}

/** What one row's values are drawn from, beside its own random stream. */
interface RowContext {
  p: Product;
  ndc: string;
  repack: string;
  pndc: string;
  repndc: string;
  dupdcDays: readonly number[];
}

function* rowsOf(opts: Required<GenerateOptions>): Generator<Rndc14Row> {
  const r = prng(opts.seed);
  const shape = catalogueShape(opts.rows);
  const products = buildProducts(shape, r);
  const labelerIds = labelerIdsOf(r, shape.labelers);
  const assign = assignProducts(r, opts.rows, products.length);
  // DUPDC takes 2,506 distinct dates at full size; PNDC and REPNDC each name ~18.5K distinct earlier NDCs.
  const dupdcDays = distinctInts(
    r,
    Math.max(1, Math.round(opts.rows * (2_506 / FULL_CATALOGUE_ROWS))),
    8_000,
    6_000,
  );
  const ids = assignIdentities(r, opts.rows, products, assign, labelerIds);
  const order = Uint32Array.from({ length: opts.rows }, (_, i) => i);
  if (opts.order === 'ndc') order.sort((a, b) => (ids.ndcNum[a] as number) - (ids.ndcNum[b] as number));
  const { ri, reseed } = rowStreams(opts.seed);
  for (let pos = 0; pos < opts.rows; pos++) {
    const i = order[pos] as number;
    reseed(i);
    const ctx: RowContext = {
      p: products[assign[i] as number] as Product,
      ndc: ids.ndcOf[i] as string,
      repack: ids.repackOf[i] === 1 ? '1' : '0',
      pndc: ids.pndcOf.get(i) ?? '',
      repndc: ids.repndcOf.get(i) ?? '',
      dupdcDays,
    };
    yield rowColumns(ri, ctx);
  }
}

/**
 * One row: every column drawn from `ri` in column order, left to right. One object literal on purpose: rows
 * built as two halves spread together took a slower object shape (the generator ran ~30 % slower).
 */
function rowColumns(ri: Rand, { p, ndc, repack, pndc, repndc, dupdcDays }: RowContext): Rndc14Row {
  let ln: string | null = p.ln60.slice(0, 30).trimEnd();
  const ineligible = ri();
  if (ineligible < 0.008) ln = null;
  else if (ineligible < 0.02) ln = pick(ri, ['AB', '  X ', 'KIT', '', 'N/A', ' IV ']);
  const active = ri() < 0.2443;
  const syringe = p.pd === 'SYRINGE';
  return {
    NDC: ndc,
    LBLRID: `A${ndc.slice(0, 5)}`,
    LN: ln,
    LN60: p.ln60,
    BN: p.bn,
    GCN_SEQNO: ri() < 0.004 ? null : p.gcn,
    INNOV: p.innov,
    // prettier-ignore
    GNI: weighted(ri, [['1', 54.7], ['2', 31.1], ['0', 14.2]]),
    // prettier-ignore
    GMI: weighted(ri, [['1', 39.5], ['4', 31.7], ['0', 10], ['2', 10], ['3', 8.8]]),
    // prettier-ignore
    GTI: weighted(ri, [['4', 46.6], ['3', 29.9], ['1', 12], ['2', 8], ['0', 3.5]]),
    DF: p.df,
    PS: pick(ri, p.ps),
    AD: ri() < 0.9 ? '' : pick(ri, ['ENSEAL', 'SUV', 'P/F', 'UD', 'S/F', 'DYE-FREE', 'LATEX-FREE']),
    PD: p.pd,
    DEA: p.dea,
    // prettier-ignore
    CL: weighted(ri, [['F', 66.3], ['O', 29.1], ['Q', 4.6]]),
    HOSP: ri() < 0.716 ? '0' : '1',
    UD: ri() < 0.945 ? '0' : '1',
    // prettier-ignore
    OBC: weighted(ri, [['ZB', 43.1], ['ZA', 27.7], ['AB', 19.9], ['AP', 4], ['ZC', 3], ['AA', 2.3]]),
    REPACK: repack,
    STPK: ri() < 0.842 ? '0' : '1',
    IPI: ri() < 0.993 ? '0' : '1',
    MINI: ri() < 0.845 ? '0' : '1',
    DADDNC: dateFrom((int(ri, 8_800) * 1.6) | 0),
    DUPDC: dateFrom(pick(ri, dupdcDays)),
    OBSDTEC: active ? ZERO_DATE : dateFrom(9_000 + int(ri, 5_000)),
    GPIDC: ri() < 0.7 ? ZERO_DATE : dateFrom(5_000 + int(ri, 9_000)),
    BBDC: ri() < 0.95 ? ZERO_DATE : dateFrom(6_000 + int(ri, 8_000)),
    HCFA_FDA: pick(ri, HCFA_FDA),
    // prettier-ignore
    HCFA_UNIT: weighted(ri, [[p.hcfaUnit === 'TAB' ? 'TAB' : 'CAP', 21.3], ['ML', 9.1], ['GM', 2.8], ['', 60], ['EA', 6.8]]),
    HCFA_PS: pick(ri, p.ps),
    // prettier-ignore
    HCFA_TYP: weighted(ri, [['', 65.1], ['1', 27.9], ['2', 7]]),
    // prettier-ignore
    HCFA_DC: weighted(ri, [['', 67], ['N', 26.7], ['I', 3.5], ['S', 2.9]]),
    NDL_GDGE: syringe ? pick(ri, ['25.000', '27.000', '29.000', '31.000']) : null,
    NDL_LNGTH: syringe ? pick(ri, ['0.500', '0.625', '1.000', '1.500']) : null,
    SYR_CPCTY: syringe ? pick(ri, ['0.300', '0.500', '1.000', '3.000']) : null,
    SHLF_PCK: pick(ri, [0, 1, 6, 12, 24]),
    SHIPPER: pick(ri, [0, 12, 24, 48, 144]),
    CSP: pick(ri, [0, 1, 10]),
    PNDC: pndc,
    REPNDC: repndc,
    HOME: ri() < 0.956 ? '0' : '1',
    PLBLR: ri() < 0.906 ? '0' : '1',
    INPCKI: ri() < 0.972 ? '0' : '1',
    OUTPCKI: ri() < 0.97 ? '0' : '1',
    LN25I: ri() < 0.606 ? '1' : '0',
    NDCGI1: ri() < 0.909 ? '1' : '2',
    UU: ri() < 0.993 ? '0' : '1',
    PPI: ri() < 0.99 ? '' : '1',
    TOP200: ri() < 0.02 ? String(1 + int(ri, 196)) : '',
    TOP50GEN: ri() < 0.01 ? String(1 + int(ri, 51)) : '',
    DESI: '',
    DESDTEC: ZERO_DATE,
    DESI2: '',
    DES2DTEC: ZERO_DATE,
    LN25: '',
    HCFA_DESC1: ZERO_DATE,
    HCFA_DESI1: '',
    GPI: '9',
    GSI: '9',
    NDCFI: pick(ri, ['1', '2', '3', '4', '5', '6']),
    OBC_EXP: ri() < 0.8 ? '' : pick(ri, ['AB', 'ZB', 'AP']),
    OBC3: ri() < 0.8 ? '' : pick(ri, ['AB1', 'AB2', 'ZB1', 'AP1']),
    PS_EQUIV: pick(ri, p.ps),
    MAINT: ri() < 0.661 ? '' : '1',
    HCFA_APPC: ri() < 0.6 ? ZERO_DATE : dateFrom(7_000 + int(ri, 7_000)),
    HCFA_MRKC: ri() < 0.6 ? ZERO_DATE : dateFrom(7_000 + int(ri, 7_000)),
    HCFA_TRMC: ri() < 0.9 ? ZERO_DATE : dateFrom(10_000 + int(ri, 4_000)),
  };
}

/** Column names in table order (for LOAD DATA and INSERT). */
export const COLUMN_NAMES: readonly string[] = RNDC14_COLUMNS.map((c) => c.name);

// ------------------------------------------------------------------------------------------ factories

const SAMPLE_CACHE = new Map<number, Rndc14Row[]>();

/** The eligible rows of a small realistic catalogue (cached per seed) to draw single rows from. */
function sample(seed: number): Rndc14Row[] {
  let rows = SAMPLE_CACHE.get(seed);
  if (!rows) {
    rows = [...generateCatalogue(2_000, seed)].filter(isEligible);
    SAMPLE_CACHE.set(seed, rows);
  }
  return rows;
}

/**
 * One realistic, eligible row: the i-th (mod ~1,960) of a small catalogue for `seed`, with overrides
 * applied last (`makeRow({ LN: null })` is an ineligible row). Same arguments, same row.
 */
export function makeRow(overrides: Partial<Rndc14Row> = {}, i = 0, seed = 7): Rndc14Row {
  const rows = sample(seed);
  return { ...(rows[i % rows.length] as Rndc14Row), ...overrides } as Rndc14Row;
}

/** Changes as First Databank publishes them, each returning a new row (the input is not modified). */
export const changes = {
  /** A new label name (LN and LN60): an unknown text, so it needs an embedding. `tag` makes it unique. */
  rename(row: Rndc14Row, tag: string | number): Rndc14Row {
    const [first, ...rest] = String(row.LN60 ?? row.LN ?? 'DRUG').split(' ');
    const ln60 = `${first} N${tag} ${rest.join(' ')}`.slice(0, 60).trimEnd();
    return { ...row, LN60: ln60, LN: ln60.slice(0, 30).trimEnd() };
  },
  /**
   * A price-list style change: package size, HCFA package size and type, date updated; no name or other
   * indexed field changes. Deterministic for a row unless `r` is given.
   */
  priceList(row: Rndc14Row, r: () => number = prng(Number(String(row.NDC ?? '').slice(-7)) || 1)): Rndc14Row {
    const ps = (Math.round(r() * 1000) + 1).toFixed(3);
    return {
      ...row,
      PS: ps,
      HCFA_PS: ps,
      DUPDC: '2026-11-20 00:00:00.000000',
      HCFA_TYP: r() < 0.5 ? '1' : '2',
    };
  },
  /** Makes an eligible row ineligible (LN too short) or an ineligible one eligible again. */
  flipEligibility(row: Rndc14Row): Rndc14Row {
    return isEligible(row)
      ? { ...row, LN: 'KIT' }
      : {
          ...row,
          LN: String(row.LN60 ?? 'ASPIRIN 81 MG TABLET')
            .slice(0, 30)
            .trimEnd(),
        };
  },
  /** A new NDC for the same product (the labeler reassigns the package code); always differs from the old. */
  newNdc(row: Rndc14Row, k: number): Rndc14Row {
    const ndc = String(row.NDC);
    const pkg = (Number(ndc.slice(9)) + 1 + (Math.abs(Math.trunc(k)) % 99)) % 100;
    return { ...row, NDC: `${ndc.slice(0, 9)}${String(pkg).padStart(2, '0')}` };
  },
};
