import * as esbuild from "esbuild";
import * as acorn from "acorn";
const entry = process.argv[2];
const r = await esbuild.build({ entryPoints:[entry], bundle:true, format:"esm", platform:"neutral", target:"es2015", write:false, minify:false, logLevel:"silent" });
const code = r.outputFiles[0].text;
const lines = code.split("\n"); let pos=0; const marks=[];
for (const l of lines){ const m=/^\s*\/\/ (firmware\/\S+|test\/\S+)/.exec(l); if(m) marks.push([pos,m[1]]); pos+=l.length+1;}
const modOf = (p)=>{let m="?";for(const [o,n] of marks){if(o<=p)m=n;else break;}return m;};
const ast = acorn.parse(code,{ecmaVersion:2020, sourceType:"module"});
const per={};
function walk(n){ if(!n||typeof n.type!=="string")return;
  if(/Function/.test(n.type)){ const m=modOf(n.start); per[m]=per[m]||{fn:0,params:0}; per[m].fn++; per[m].params+=n.params.length; }
  for(const k in n){ const v=n[k]; if(Array.isArray(v)) v.forEach(walk); else if(v&&typeof v.type==="string") walk(v);} }
walk(ast);
let tf=0,tp=0;
for(const [m,v] of Object.entries(per).sort((a,b)=>b[1].fn-a[1].fn)){console.log(m.padEnd(45),v.fn,v.params); tf+=v.fn;tp+=v.params;}
console.log("total",tf,tp);
