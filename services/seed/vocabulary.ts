/**
 * The words of the synthetic catalogue: real generic ingredients with their DEA schedule, real brand names,
 * the routes each ingredient is sold in, and per route its dosage form code, forms, strengths, package sizes
 * and salts; syllables for synthetic brands. ./catalogue-plan.ts builds formulations and products from them.
 */

/** Ingredient, DEA schedule (0 = none). Real generic names; combined with salts/variants below. */
// prettier-ignore
export const INGREDIENTS: readonly (readonly [string, string])[] = [
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
export const REAL_BRANDS: Readonly<Record<string, readonly string[]>> = {
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
export const ROUTES: Readonly<Record<string, string>> = {
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
export type Form = readonly [string, string, string];

export interface Route {
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
export const ROUTE_TABLE: Readonly<Record<string, Route>> = {
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
export const BRAND_SYLLABLES = [
  'ZE', 'PRI', 'LI', 'TOR', 'VA', 'NO', 'XA', 'GLU', 'CO',
  'PHA', 'ZO', 'LOFT', 'NEX', 'IUM', 'LAN', 'TUS', 'MAX', 'RA', 'DEX', 'TRO', 'SYN', 'VEL', 'QUA', 'BRI',
  'LYR', 'ICA', 'ZAN', 'TAC', 'PRO', 'VIL', 'BOUND', 'JAR', 'DI', 'ANCE', 'OZEM', 'PIC', 'VIC', 'TOZA',
  'FLO', 'MET', 'AR', 'KEP', 'PRA', 'LEV', 'AMB', 'IEN', 'SEROQ', 'UEL', 'ABI', 'LIFY',
];
