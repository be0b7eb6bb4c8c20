console.log("guard: not yet")
